"""Server-generated identifiers in OpenAI's shape: a prefix plus 21 base62 characters (26 in all, under 32)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """Return e.g. ``item_Ct1OVqJmiaDhg4nkh3JWr`` for prefix ``item``."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(21))
