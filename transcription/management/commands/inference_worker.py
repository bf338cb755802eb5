"""Run an inference worker that serves jobs from the channel layer (scale-out mode)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from speech import telemetry
from speech.inference.service import LocalInferenceService
from speech.inference.worker import InferenceWorker
from transcription.streaming.service import build_inference_service, resolve_config


class Command(BaseCommand):
    help = "Consume transcription jobs from the channel layer (inference.final / inference.realtime)."

    def add_arguments(self, parser):
        parser.add_argument("--lanes", default="final,realtime", help="comma-separated: final, realtime")
        parser.add_argument("--device", help='"auto", "cpu" or "cuda" (default: STT_DEVICE)')
        parser.add_argument("--model", help="model name or path for the final lane (default: STT_MODEL)")
        parser.add_argument(
            "--realtime-model", help="model for the realtime lane (default: STT_REALTIME_MODEL)"
        )
        parser.add_argument("--compute-type", help='e.g. "int8", "float16" (default: STT_COMPUTE_TYPE)')
        parser.add_argument("--batch-size", type=int, help="maximum batch size (default: STT_MAX_BATCH_SIZE)")
        parser.add_argument(
            "--cpu-threads", type=int, help="CTranslate2 CPU threads (default: STT_CPU_THREADS)"
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="serve Prometheus /metrics on this port (a host aggregate with PROMETHEUS_MULTIPROC_DIR)",
        )

    def handle(self, *args, **options):
        from channels.layers import get_channel_layer

        overrides = {
            "DEVICE": options["device"],
            "MODEL": options["model"],
            "REALTIME_MODEL": options["realtime_model"],
            "COMPUTE_TYPE": options["compute_type"],
            "MAX_BATCH_SIZE": options["batch_size"],
            "CPU_THREADS": options["cpu_threads"],
        }
        config = resolve_config(
            {**settings.STT_INFERENCE, **{k: v for k, v in overrides.items() if v is not None}}
        )
        config["BACKEND"] = "local"  # a worker runs the models itself
        kinds = [k.strip() for k in options["lanes"].split(",") if k.strip()]
        if not kinds or set(kinds) - {"final", "realtime"}:
            raise CommandError("--lanes takes final, realtime or final,realtime")
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("no channel layer is configured (set REDIS_URL)")
        service = build_inference_service(config)
        assert isinstance(service, LocalInferenceService)
        if options["metrics_port"]:
            telemetry.serve(options["metrics_port"])
        asyncio.run(
            self._serve(
                InferenceWorker(
                    layer,
                    service,
                    kinds=kinds,
                    prefix=config["CHANNEL_PREFIX"],
                    heartbeat_s=float(config["WORKER_HEARTBEAT_S"]),
                )
            )
        )

    async def _serve(self, worker: InferenceWorker) -> None:
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stopping or stopping.append(loop.create_task(worker.stop())))
        runner = loop.create_task(worker.run())
        # Model loading takes seconds; a 50 ms poll costs nothing next to it.
        while not worker.service.ready and not runner.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if runner.done():
            await runner
        self.stdout.write(
            f"inference worker {worker.name} ready: lanes {','.join(worker.kinds)}", ending="\n"
        )
        self.stdout.flush()
        await runner
        telemetry.mark_process_dead()  # with PROMETHEUS_MULTIPROC_DIR: its queue gauges stop counting
        self.stdout.write(f"inference worker {worker.name} stopped after {worker.handled} jobs")
