"""Chains and their specs, and the runner that takes a chain over folders of photos."""

from salplug.pipeline._chain import Chain, ChainOutput
from salplug.pipeline._manifest import ManifestError, OutputFolderError
from salplug.pipeline._runner import RunReport, run_chain_on_files
from salplug.pipeline._spec import ChainSpec, StepSpec, dump_spec, load_spec, parse_settings

__all__ = [
    "Chain", "ChainOutput", "ChainSpec", "ManifestError", "OutputFolderError", "RunReport", "StepSpec",
    "dump_spec", "load_spec", "parse_settings", "run_chain_on_files",
]
