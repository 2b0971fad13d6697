# EXPECT: healthy
"""A tiny random-init BERT classifier trained by Hugging Face's Trainer on a synthetic token rule.

Tempts: the loop, optimizer, scheduler (linear decay with warm-up) and train()/eval() all belong to
the Trainer; the loss is computed inside the model's forward from the `labels` key and returned as
outputs.loss; batches are dicts of padded token ids, where most positions are padding to be masked.
"""
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: the model is built from a config

import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

VOCAB, PAD, CLS, MARK = 64, 0, 1, 2  # ids 3..63 are ordinary tokens
MAX_LEN = 16


class MarkedTokens(Dataset):
    """Random token sequences of random length; the label: does the marker token occur in it?"""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for _ in range(n):
            length = int(torch.randint(6, MAX_LEN + 1, (1,), generator=g))
            tokens = torch.randint(3, VOCAB, (length,), generator=g)
            label = int(torch.rand(1, generator=g) < 0.5)
            if label:
                tokens[int(torch.randint(1, length, (1,), generator=g))] = MARK
            input_ids = torch.full((MAX_LEN,), PAD)
            input_ids[0] = CLS
            input_ids[1:length] = tokens[1:]
            attention_mask = (torch.arange(MAX_LEN) < length).long()
            self.items.append({"input_ids": input_ids, "attention_mask": attention_mask,
                               "labels": torch.tensor(label)})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def accuracy(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


if __name__ == "__main__":
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=MAX_LEN, num_labels=2, pad_token_id=PAD)
    model = BertForSequenceClassification(config)
    output_dir = tempfile.mkdtemp(prefix="hf_trainer_")
    try:
        args = TrainingArguments(
            output_dir=output_dir,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            eval_strategy="no",
            num_train_epochs=6,  # 1024 examples / 32 a batch = 32 steps an epoch: 192 optimizer steps
            per_device_train_batch_size=32,
            per_device_eval_batch_size=128,
            learning_rate=3e-3,
            warmup_steps=20,
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=MarkedTokens(1024, seed=1),
                          eval_dataset=MarkedTokens(512, seed=2), compute_metrics=accuracy)
        result = trainer.train()
        metrics = trainer.evaluate()
        print(f"steps {result.global_step}  train_loss {result.training_loss:.4f}  "
              f"eval_loss {metrics['eval_loss']:.4f}  eval_accuracy {metrics['eval_accuracy']:.4f}")
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
