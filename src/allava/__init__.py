"""ALLaVA: lite vision-language models trained on teacher-synthesized data."""
