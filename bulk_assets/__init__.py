"""Datasets as Dagster assets, bulk-loaded into PostgreSQL by :mod:`resources`."""

from .component import DatasetsComponent as DatasetsComponent
from .component import datasets_component as datasets_component
from .discovery import DatasetSpecError as DatasetSpecError
from .discovery import dataset as dataset
from .discovery import discover as discover
from .discovery import specs_from_module as specs_from_module
from .discovery import specs_from_path as specs_from_path
from .discovery import specs_from_yaml as specs_from_yaml
from .factory import build_asset as build_asset
from .factory import build_definitions as build_definitions
from .fetch import ArrowRead as ArrowRead
from .fetch import Fetcher as Fetcher
from .fetch import FetchError as FetchError
from .loading import PartitionLoad as PartitionLoad
from .loading import load_dataset as load_dataset
from .partitions import Partition as Partition
from .specs import ChecksSpec as ChecksSpec
from .specs import ChunkPartitions as ChunkPartitions
from .specs import DatasetSpec as DatasetSpec
from .specs import FetchSource as FetchSource
from .specs import GeneratedSource as GeneratedSource
from .specs import TimePartitions as TimePartitions
