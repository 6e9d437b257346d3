"""Metrics, each through the field's reference implementation where one exists.

- ``classification``: accuracy;
- ``temporal``: STG tIoU, R@1 at IoU thresholds, off-by-one accuracy;
- ``text``: BLEU-4 (sacrebleu), CIDEr and METEOR (pycocoevalcap), optional LLM judge;
- ``asd``: active-speaker mAP per the official AVA-ActiveSpeaker procedure;
- ``bootstrap``: 95% confidence intervals for every headline figure.
"""
