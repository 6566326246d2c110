"""Create the CURVE key pairs of the services (docs/SECURITY.md).

    python deploy/curve_keys.py                 all six services, into keys/ (public/ and secret/)
    python deploy/curve_keys.py --dir D NAME..  only these names, into D

An existing secret key is never overwritten: remove it first to replace a key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.curve import SERVICES, create_keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent.parent / "keys")
    parser.add_argument("names", nargs="*", default=list(SERVICES))
    args = parser.parse_args()
    created = create_keys(args.dir, tuple(args.names))
    kept = [name for name in args.names if name not in created]
    print(f"created: {', '.join(created) or 'none'}; kept (secret key already there): {', '.join(kept) or 'none'}")
    print(f"public keys in {args.dir / 'public'} (copy to every machine); "
          f"secret keys in {args.dir / 'secret'} (each only where its service runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
