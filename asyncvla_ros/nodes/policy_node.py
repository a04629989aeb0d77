"""The semantic and action nodes co-located in one process, sharing one policy and one store.

The semantic condition is handed over in memory (no serialisation, no copy: on a GPU it stays on
the GPU); the semantic_features topic still carries its metadata, so recorders and monitors work. The
action node's refresh requests (its confidence trigger) reach the semantic node in memory as well.
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
        action = ActionNode(store=store)
        set_torch_threads(action.torch_threads)
        semantic = SemanticNode(policy=action.policy, model_id=action.model_id, store=store)
        action.on_refresh_request = semantic.request_refresh  # the confidence trigger's requests, in memory
        return [action, semantic]

    run_and_exit(make, args)


if __name__ == "__main__":
    main()
