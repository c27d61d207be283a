"""ALLaVA: lite vision-language models trained on teacher-synthesized data."""

__version__ = "0.1.0"


def load_model(model_dir, device: str = "cpu"):
    """Load an exported model directory into a predictor with `.answer(questions, images)`."""
    from allava.inference import load_model as _load

    return _load(model_dir, device=device)
