// Drives the engine with dockerode for tests/integration/test_dockerode.py.
//
//   node dockerode_checks.js <check> [args...]     (DOCKER_SOCKET names the engine's socket)
//
// Each check prints one JSON object on stdout: what dockerode saw, for the Python test to judge.
'use strict';

const fs = require('fs');
const { PassThrough } = require('stream');
const Docker = require('dockerode');

const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET });

// Every message of a JSON progress stream, as dockerode's followProgress hands them over.
function follow(stream) {
  return new Promise((resolve, reject) => {
    const seen = [];
    docker.modem.followProgress(stream, (err, output) => (err ? reject(err) : resolve({ seen, output })),
      (event) => seen.push(event));
  });
}

function collect(stream) {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  return () => Buffer.concat(chunks).toString();
}

const checks = {
  // docker load of an archive: the progress messages and the image it made
  async load(tarPath, tag) {
    const stream = await docker.loadImage(fs.createReadStream(tarPath));
    const { seen } = await follow(stream);
    const image = await docker.getImage(tag).inspect();
    return { messages: seen, id: image.Id, tags: image.RepoTags };
  },

  // a build followed step by step; errors inside the stream are messages like the others
  async build(contextDir, tag) {
    let stream;
    try {
      stream = await docker.buildImage({ context: contextDir, src: fs.readdirSync(contextDir) }, { t: tag });
    } catch (err) {
      // docker-modem puts the body's message in the error's (the build is a stream)
      return { httpStatus: err.statusCode, httpError: String(err.message) };
    }
    const { seen } = await follow(stream);
    return { httpStatus: 200, messages: seen };
  },

  // attach before start: stdin in, stdout and stderr apart (multiplexed), or one raw stream (TTY)
  async attach(image, tty) {
    const useTty = tty === 'tty';
    const container = await docker.createContainer({
      Image: image,
      Cmd: ['sh', '-c', 'read line; echo "out:$line"; echo "err:$line" >&2'],
      Tty: useTty, OpenStdin: true, StdinOnce: true,
      AttachStdin: true, AttachStdout: true, AttachStderr: true,
    });
    try {
      const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
      const out = new PassThrough();
      const err = new PassThrough();
      const outText = collect(out);
      const errText = collect(err);
      let rawText = () => '';
      if (useTty) {
        rawText = collect(stream);
      } else {
        container.modem.demuxStream(stream, out, err);
      }
      const ended = new Promise((resolve) => stream.on('end', resolve));
      await container.start();
      stream.write('ping\n');
      const status = await container.wait();
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 5000))]);
      return { stdout: outText(), stderr: errText(), raw: rawText(), exit: status.StatusCode };
    } finally {
      await container.remove({ force: true });
    }
  },
};

(async () => {
  const [name, ...args] = process.argv.slice(2);
  const result = await checks[name](...args);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
})().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
