"""Bulk writes into PostgreSQL for Dagster assets."""

from ._identifiers import check_identifier as check_identifier
from ._identifiers import qualified as qualified
from ._identifiers import quote_ident as quote_ident
from ._modes import WRITE_MODES as WRITE_MODES
from ._modes import WriteMode as WriteMode
from ._progress import Log as Log
from ._request import WriteOptions as WriteOptions
from ._row_locator import RowLocator as RowLocator
from ._typed_source import TableTypedSource as TableTypedSource
from .errors import BadValueError as BadValueError
from .errors import BulkWriteError as BulkWriteError
from .errors import NoDatabaseError as NoDatabaseError
from .errors import OutcomeUnknownError as OutcomeUnknownError
from .errors import SchemaMismatchError as SchemaMismatchError
from .errors import TerminalWriteError as TerminalWriteError
from .errors import TransientWriteError as TransientWriteError
from .errors import WriteTimeoutError as WriteTimeoutError
from .key_range import KeyRange as KeyRange
from .postgres_bulk_writer import PostgresBulkWriter as PostgresBulkWriter
from .write_result import Mode as Mode
from .write_result import WriteResult as WriteResult
