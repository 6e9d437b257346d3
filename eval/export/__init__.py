"""Exports that the field's tools read: diarization as RTTM (pyannote.core), the tasks as an lmms-eval
task folder, and the samples as a Hugging Face ``datasets`` dataset. ``pipelines/export.py`` runs them."""
