"""`python -m benchmarks` (make bench): every benchmark in turn."""

from benchmarks import discovery, embed, pretrain

for module in (embed, discovery, pretrain):
    module.main()
