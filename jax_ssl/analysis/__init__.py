"""Looking inside a trained backbone (DESIGN.md §2: reads checkpoints as the evaluation
job does, never imports the trainer): ``relax`` (RELAX / U-RELAX importance and
uncertainty of an embedding under random masks), ``maps`` (a ViT's last-block CLS
attention, thresholded as DINO's ``visualize_attention.py``, and cosine maps of one
patch's feature against every patch), ``embed_map`` (PCA, t-SNE, UMAP and Mapper maps of
a split's features, and what each keeps of their structure) and ``job`` (the command)."""
