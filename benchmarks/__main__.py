"""`python -m benchmarks` (make bench): every benchmark in turn."""

from benchmarks import classify, classify_review, discovery, embed, explorer, pretrain, scale

for module in (embed, discovery, classify, classify_review, pretrain, explorer, scale):
    module.main()
