"""Ways out of the project: the native model directory and the Hugging Face formats."""
