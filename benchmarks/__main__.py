"""`python -m benchmarks` (make bench): every benchmark in turn."""

from benchmarks import classify, discovery, embed, explorer, pretrain, scale

for module in (embed, discovery, classify, pretrain, explorer, scale):
    module.main()
