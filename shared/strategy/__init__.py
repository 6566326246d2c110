"""The strategy engine both strategy services share; each service adds only its symbol's own rules."""
