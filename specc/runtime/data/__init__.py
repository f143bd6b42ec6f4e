"""Data: reading published formats, tokenizers, corpora and token stores, batches, the built-in demo sets.

Above the runtime's core (errors, sections, config); below runs, objectives, tasks and training.
"""
