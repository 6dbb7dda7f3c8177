from tuneboard.teams.service import (
    Principal,
    authenticate,
    create_key,
    create_team,
    has_role,
    revoke_key,
)

__all__ = ["Principal", "authenticate", "create_key", "create_team", "has_role", "revoke_key"]
