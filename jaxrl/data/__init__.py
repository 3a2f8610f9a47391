"""Logged datasets for offline RL: device-resident sampling, validated folders on disk, quality reports,
D4RL/Minari import and export, and derived (filtered) datasets that remember their parent."""

from jaxrl.data.dataset import Dataset, sample
from jaxrl.data.filter import top_fraction
from jaxrl.data.metadata import DatasetError, Metadata, Parent, Provenance
from jaxrl.data.quality import quality_report, write_report
from jaxrl.data.storage import load, save

__all__ = [
    "Dataset",
    "DatasetError",
    "Metadata",
    "Parent",
    "Provenance",
    "load",
    "quality_report",
    "sample",
    "save",
    "top_fraction",
    "write_report",
]
