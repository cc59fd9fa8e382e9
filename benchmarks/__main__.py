"""`python -m benchmarks` (make bench): every benchmark in turn."""

from benchmarks import classify, discovery, embed, pretrain

for module in (embed, discovery, classify, pretrain):
    module.main()
