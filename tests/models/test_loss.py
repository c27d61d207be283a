"""Token- vs sample-averaged cross-entropy, on hand-made logits."""
import math

import pytest
import torch

from allava.models.loss import causal_lm_loss


def logits_for(targets: list[list[int]], right: list[list[bool]], vocab: int = 4) -> torch.Tensor:
    """Logits whose prediction at t is certain (right or wrong) about the label at t+1."""
    batch, length = len(targets), len(targets[0])
    logits = torch.zeros(batch, length, vocab)
    for b in range(batch):
        for t in range(length - 1):
            token = targets[b][t + 1] if right[b][t] else (targets[b][t + 1] + 1) % vocab
            logits[b, t, token] = 100.0
    return logits


def test_reductions_weigh_short_answers_differently():
    # Sample 0 supervises 3 tokens, all wrong; sample 1 supervises 1 token, right.
    labels = torch.tensor([[-100, 1, 2, 3], [-100, -100, -100, 2]])
    inputs = [[0, 1, 2, 3], [0, 0, 0, 2]]
    right = [[False, False, False], [True, True, True]]
    logits = logits_for(inputs, right)
    wrong = 100.0  # CE of a confident wrong guess, up to a negligible log-sum-exp term
    token = causal_lm_loss(logits, labels, "token")
    sample = causal_lm_loss(logits, labels, "sample")
    assert token.item() == pytest.approx(3 * wrong / 4, rel=1e-3)
    assert sample.item() == pytest.approx(wrong / 2, rel=1e-3)


def test_token_reduction_matches_the_hugging_face_loss():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    labels = torch.randint(0, 11, (3, 7))
    labels[:, :3] = -100
    reference = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert math.isclose(causal_lm_loss(logits, labels, "token").item(), reference.item(),
                        rel_tol=1e-6)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="sample"):
        causal_lm_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), "mean")


def test_caption_word_targets_mark_exactly_the_supervised_tokens():
    from allava.training.objectives import caption_word_targets

    labels = torch.tensor([[-100, 4, 2, 4], [-100, -100, 1, -100]])
    targets = caption_word_targets(labels, vocab_size=6)
    assert targets.tolist() == [[0, 0, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]]


def test_caption_words_loss_learns_from_image_rows_only_and_refuses_two_images():
    from allava.training.objectives import CaptionWordsHead, caption_words_loss

    image_id, per_image = 9, 2
    vision = torch.nn.Flatten(2)  # [N, 3, 2, 2] -> [N, 3, 4]: 3 "patches" of 4 features
    head = CaptionWordsHead(feature_dim=4, vocab_size=10)
    batch = {"input_ids": torch.tensor([[1, image_id, image_id, 5], [1, 2, 3, 4]]),
             "labels": torch.tensor([[-100, -100, -100, 5], [-100, 2, 3, 4]]),
             "pixel_values": torch.randn(1, 3, 2, 2)}
    loss = caption_words_loss(vision, head, batch, image_id, per_image)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        head(vision(batch["pixel_values"])), torch.eye(10)[5:6])
    torch.testing.assert_close(loss, expected)  # the text-only row played no part
    assert caption_words_loss(vision, head, {**batch, "pixel_values": None}, image_id,
                              per_image) is None
    two = {**batch, "input_ids": torch.tensor([[image_id] * 4, [1, 2, 3, 4]]),
           "pixel_values": torch.randn(2, 3, 2, 2)}
    with pytest.raises(ValueError, match="one image per sample"):
        caption_words_loss(vision, head, two, image_id, per_image)


def test_unknown_objective_is_refused():
    from allava.training.objectives import check_objective

    with pytest.raises(ValueError, match="caption_words"):
        check_objective("contrastive")
