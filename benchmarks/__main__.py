"""`python -m benchmarks` (make bench): every benchmark in turn."""

from benchmarks import classify, discovery, embed, pretrain, scale

for module in (embed, discovery, classify, pretrain, scale):
    module.main()
