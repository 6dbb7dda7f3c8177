from tuneboard.db.base import Base, utcnow
from tuneboard.db.engine import (
    create_db_engine,
    describe_db_error,
    dispose_engines,
    get_engine,
    get_session_factory,
    is_sqlite,
    normalize_url,
    session_scope,
    set_application_name,
)

__all__ = [
    "Base",
    "create_db_engine",
    "describe_db_error",
    "dispose_engines",
    "get_engine",
    "get_session_factory",
    "is_sqlite",
    "normalize_url",
    "session_scope",
    "set_application_name",
    "utcnow",
]
