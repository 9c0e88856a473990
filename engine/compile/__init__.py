"""Graph -> torch.fx compiler, exporters and code generation. Importing this imports torch."""

from engine.compile.fx_builder import CompiledModel, GraphInvalidError, attribute_name, compile_graph

__all__ = ["CompiledModel", "GraphInvalidError", "attribute_name", "compile_graph"]
