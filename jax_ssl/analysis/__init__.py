"""Looking inside a trained backbone (DESIGN.md §2: reads checkpoints as the evaluation
job does, never imports the trainer): ``relax`` (RELAX / U-RELAX importance and
uncertainty of an embedding under random masks), ``attention`` (a ViT's last-block CLS
attention, thresholded as DINO's ``visualize_attention.py``) and ``patch_similarity``
(cosine maps of one patch's feature against every patch)."""
