"""Tests of the embedded llama.cpp provider against the real packaged Gemma file."""
