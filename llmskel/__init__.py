"""llmskel: skeleton-based action recognition with language.

Supervised recognition with part-wise language alignment (GAP), zero-shot recognition of classes
named at inference time, few-shot / one-shot recognition, and a LoRA-tuned LLM as recognizer.
"""

__version__ = "0.1.0"
