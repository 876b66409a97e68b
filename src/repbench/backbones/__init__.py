"""Backbone registry and loaders."""

from repbench.backbones.loading import Backbone, load_backbone, param_count
from repbench.backbones.registry import BackboneSpec, get_spec, list_specs

__all__ = ["Backbone", "BackboneSpec", "get_spec", "list_specs", "load_backbone", "param_count"]
