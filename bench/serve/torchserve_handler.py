"""TorchServe handler for the serving benchmark: the bench/e2e PyTorch LeNet-5 or ResNet-20
(random weights), TF Serving's row-format JSON in and out, so the same wrk body serves all three
servers. TorchServe batches requests (batch_size / max_batch_delay at registration); each
request's instances are concatenated and the outputs split back."""
import json
import os

import torch
from ts.torch_handler.base_handler import BaseHandler


class Handler(BaseHandler):
    def initialize(self, context):
        from torch_e2e import LeNet5, ResNet20  # shipped with --extra-files

        torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
        name = context.manifest["model"]["modelName"]
        self.model = (LeNet5() if name == "lenet5" else ResNet20()).eval()
        self.initialized = True

    def preprocess(self, requests):
        xs, counts = [], []
        for r in requests:
            body = r.get("body") or r.get("data")
            if isinstance(body, (bytes, bytearray)):
                body = json.loads(body)
            x = torch.tensor(body["instances"], dtype=torch.float32).permute(0, 3, 1, 2)
            xs.append(x)
            counts.append(x.shape[0])
        self.counts = counts
        return torch.cat(xs)

    def inference(self, x, *args, **kwargs):
        with torch.no_grad():
            return torch.softmax(self.model(x), dim=1)

    def postprocess(self, y):
        out, i = [], 0
        for n in self.counts:
            out.append({"predictions": y[i:i + n].tolist()})
            i += n
        return out
