"""Asset definitions, one module per dataset."""

from .users import users as users
from .users import users_row_count as users_row_count
