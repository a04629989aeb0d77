"""A small word-level tokenizer for the tiny backbone.

Real Qwen2.5-VL checkpoints carry their own tokenizer in their directory. A tiny model trained from
scratch has none (and none can be downloaded), so it gets a word-level vocabulary built with the
`tokenizers` library from the instructions it will see, saved beside its weights like any HF tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from asyncvla_ros.policy.config import SYSTEM_PROMPT

# Qwen2.5-VL's chat and vision markers; the backbone config takes their ids from the tokenizer.
PAD_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<unk>"
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
# Words the prompt template itself uses, and the 256 bins of a discretised state.
TEMPLATE_WORDS = ("system", "user", "assistant", "state", ":") + tuple(str(i) for i in range(256))


def build_word_tokenizer(corpus: Iterable[str], extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Build a lower-cased word-level tokenizer whose vocabulary covers `corpus` and the prompt template.

    Args:
        corpus: texts (instructions) whose words must be known.
        extra_words: further words to include.

    Returns:
        A `PreTrainedTokenizerFast` with Qwen2.5-VL's special tokens; unknown words map to ``<unk>``.
    """
    specials = [PAD_TOKEN, UNK_TOKEN, *CHAT_TOKENS]
    tok = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    trainer = trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1)
    texts = [SYSTEM_PROMPT, *TEMPLATE_WORDS, *extra_words, *corpus]
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=UNK_TOKEN, pad_token=PAD_TOKEN, eos_token="<|im_end|>")
    fast.add_special_tokens({"additional_special_tokens": list(CHAT_TOKENS)})
    return fast
