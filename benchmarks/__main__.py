"""`python -m benchmarks` (make bench): every benchmark in turn."""

from benchmarks import classify, classify_review, discovery, embed, explorer, finetune, image_tuning, pretrain, scale

for module in (embed, discovery, classify, image_tuning, classify_review, finetune, pretrain, explorer, scale):
    module.main()
