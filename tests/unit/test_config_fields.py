"""Resources refuse options they do not have, without echoing the value given."""

from __future__ import annotations

import pydantic
import pytest

from bulk_assets import Fetcher
from resources import PostgresBulkWriter


@pytest.mark.parametrize(
    ("resource", "misspelled"),
    [
        (PostgresBulkWriter, {"dns": "postgresql://loader:s3cret-pw@db.internal/app"}),
        (PostgresBulkWriter, {"retry_wiat": 1}),
        (Fetcher, {"header": {"Authorization": "Bearer s3cret-pw"}}),
    ],
)
def test_a_misspelled_option_is_refused_without_its_value(
    resource: type[PostgresBulkWriter] | type[Fetcher], misspelled: dict[str, object]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        resource(**misspelled)  # type: ignore[arg-type]
    text = str(caught.value)
    assert next(iter(misspelled)) in text
    assert "s3cret" not in text
