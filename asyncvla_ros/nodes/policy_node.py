"""The semantic and action nodes co-located in one process, sharing one policy and one store.

The semantic condition is handed over in memory (no serialisation, no copy: on a GPU it stays on
the GPU); the semantic_features topic still carries its metadata, so recorders and monitors work.
Encoding runs on the semantic node's worker thread, so a slow encode never delays the control tick
served by the executor here (torch releases the GIL inside its kernels).
"""

from __future__ import annotations

from asyncvla_ros.control.semantic_store import LatestSemantics
from asyncvla_ros.nodes.action_node import ActionNode
from asyncvla_ros.nodes.params import set_torch_threads
from asyncvla_ros.nodes.runner import run_and_exit
from asyncvla_ros.nodes.semantic_node import SemanticNode


def main(args=None) -> None:
    def make() -> list:
        # The action node loads the policy from its parameters; the semantic node reuses it.
        store = LatestSemantics()
        semantic: list[SemanticNode] = []  # the confidence trigger's requests reach it in memory
        action = ActionNode(store=store, on_refresh_request=lambda reason: semantic[0].request_refresh(reason) if semantic else None)
        set_torch_threads(action.torch_threads)
        semantic.append(SemanticNode(policy=action.policy, model_id=action.model_id, store=store))
        return [action, semantic[0]]

    run_and_exit(make, args)


if __name__ == "__main__":
    main()
