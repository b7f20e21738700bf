"""`describe`: clips in, rationale records out. `options` (what to sample and decode), `inputs` (which clips),
`runner` (clips to records through an engine), `records` (record building, rendering and writing)."""

from affectreason.describe.inputs import iter_media_paths, media_ids, prefetch
from affectreason.describe.options import DescribeOptions, check_subtitle
from affectreason.describe.records import (
    RecordWriter,
    format_record_text,
    record_from_rationale,
    record_from_text,
    summarise_timeline,
)
from affectreason.describe.runner import (
    Failure,
    describe_clips,
    describe_paths,
    describe_segmented,
    load_for_describe,
)

__all__ = [
    "DescribeOptions",
    "Failure",
    "RecordWriter",
    "check_subtitle",
    "describe_clips",
    "describe_paths",
    "describe_segmented",
    "format_record_text",
    "iter_media_paths",
    "load_for_describe",
    "media_ids",
    "prefetch",
    "record_from_rationale",
    "record_from_text",
    "summarise_timeline",
]
