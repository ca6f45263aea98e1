"""Training our own models: the crop set they learn from, teacher labels, the eDifFIQA student."""
