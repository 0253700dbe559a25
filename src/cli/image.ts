/**
 * `emu image build`: turn a base image and cloud-init user-data into a stack image
 * (docs/architecture.md, «Guest contract and image build»). For stack maintainers; users pull what
 * this builds.
 *
 * @module
 */
import { type Command, Option } from "@commander-js/extra-typings";
import { probeHost } from "../qemu/probe.ts";
import { ARCH_WORDS, parseArch, parseSeconds, positiveInt } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { registerImageKeygen } from "./image_keygen.ts";
import { registerImagePublish } from "./image_publish.ts";
import type { CliIo } from "./io.ts";

const MIB = 1024 * 1024;

/** Registers `emu image build`. */
export function registerImage(program: Command, io: CliIo): void {
  const image = program.command("image").description(
    "build, sign and publish stack images (for maintainers)",
  );
  image
    .command("build")
    .description("boot a base image with cloud-init user-data and save the result as a qcow2")
    .requiredOption("--base <path>", "base qcow2, or an image directory with image.json")
    .requiredOption("--user-data <dir>", "directory with user-data (and the files it uses)")
    .requiredOption("--out <file.qcow2>", "the image to write; image.json goes beside it")
    .addOption(
      new Option(
        "--arch <arch>",
        "guest architecture (amd64 and arm64 are the same); default: the base's, else the host's",
      ).choices(ARCH_WORDS).argParser(parseArch),
    )
    .option("--timeout <seconds>", "how long provisioning may take", parseSeconds, 1800)
    .option("--memory <MiB>", "guest RAM while provisioning", positiveInt("--memory"), 1024)
    .option("--cpus <n>", "guest vCPUs while provisioning", positiveInt("--cpus"), 2)
    .option("--name <name>", "image name in image.json (default: the output's file name)")
    .option("--image-version <version>", "image version in image.json", "0.0.0-dev")
    .option(
      "--strict",
      "refuse user-data that fails cloud-init's schema (checked when cloud-init is installed)",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      Deno.addSignalListener("SIGINT", onSignal);
      try {
        const { buildImage } = await import("../image/build.ts");
        const result = await buildImage({
          base: options.base,
          userData: options.userData,
          out: options.out,
          probe: async (guestArch) =>
            (await probeHost({ cachePath: settings.layout.probe, env: io.env, guestArch }))
              .result,
          runtimeDir: settings.runtimeDir,
          arch: options.arch,
          timeoutMs: options.timeout * 1000,
          memoryMib: options.memory,
          cpus: options.cpus,
          name: options.name,
          version: options.imageVersion,
          strict: options.strict,
          onProgress: (t) => out.info(t),
          onWarning: (t) => out.warn(t),
          signal: controller.signal,
        });
        out.json(result);
        out.result(
          `built ${result.disk} (${(result.size / MIB).toFixed(0)} MiB, sha256 ${
            result.sha256.slice(0, 12)
          }…) in ${
            (result.provisionMs / 1000).toFixed(0)
          } s of provisioning; ${result.imageJson} describes it`,
        );
      } finally {
        Deno.removeSignalListener("SIGINT", onSignal);
      }
    });
  registerImagePublish(image, io);
  registerImageKeygen(image, io);
}
