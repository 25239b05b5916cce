"""uvd: build UVDv1-style visual sentences (the LVM training set) and train on them."""

import logging

__version__ = "0.1.0"


def _drop_apitools_warning(record: logging.LogRecord) -> bool:
    # apache_beam warns on every import that the optional BigQuery client (apitools) is missing; uvd
    # never uses BigQuery, so the line is noise in every command's output.
    return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_drop_apitools_warning)
