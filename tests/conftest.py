import torch

# Results are compared in float32 on the CPU; keep the two cores for one test at a time.
torch.set_num_threads(max(1, torch.get_num_threads()))
