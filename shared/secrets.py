"""The five secrets, from the environment or a .env file, and nothing else.

They are SecretStr (or plain ids), so printing the settings object shows '**********'. The values are
also registered with the log redaction filter (``shared.logs``) so that a value that slips into a log
line (httpx logs request URLs, which contain the bot token) comes out as '***'.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE_VARIABLE = "PORTFOLIO_ENV_FILE"


class Secrets(BaseSettings):
    """EXNESS_LOGIN, EXNESS_PASSWORD, EXNESS_SERVER, BOT_TOKEN, ADMIN_ID. All optional: the simulated
    broker needs no login and the system runs headless without a bot token."""

    model_config = SettingsConfigDict(
        extra="forbid", case_sensitive=True, env_file_encoding="utf-8", env_ignore_empty=True
    )

    EXNESS_LOGIN: int | None = Field(None, gt=0)
    EXNESS_PASSWORD: SecretStr | None = None
    EXNESS_SERVER: str | None = Field(None, min_length=1)
    BOT_TOKEN: SecretStr | None = None
    ADMIN_ID: int | None = Field(None, gt=0)

    def values_to_redact(self) -> list[str]:
        """Every secret value long enough to be recognisable in text."""
        found = [
            self.EXNESS_PASSWORD.get_secret_value() if self.EXNESS_PASSWORD else "",
            self.BOT_TOKEN.get_secret_value() if self.BOT_TOKEN else "",
            str(self.EXNESS_LOGIN or ""),
            self.EXNESS_SERVER or "",
        ]
        return [value for value in found if len(value) >= 4]


def default_env_file() -> Path:
    return Path(os.environ.get(ENV_FILE_VARIABLE, Path(__file__).resolve().parent.parent / ".env"))


def load_secrets(env_file: Path | None = None) -> Secrets:
    """Read the environment and the .env file (the environment wins). Raises ValueError naming the key
    (never the value) when one is malformed."""
    path = env_file or default_env_file()
    try:
        return Secrets(_env_file=path if path.exists() else None)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or "?"
        # Never echo err["input"]: it is a secret.
        raise ValueError(f"{path}: {key} is invalid: {err.get('msg')} (value not shown)") from None
