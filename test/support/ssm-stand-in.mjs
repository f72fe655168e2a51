/**
 * A stand-in for AWS Systems Manager's GetParameter on loopback, for the runner boot test: the
 * AWS CLI (with --endpoint-url) asks it for parameters as it would ask SSM. It speaks SSM's
 * JSON protocol (X-Amz-Target: AmazonSSM.GetParameter), does not check signatures, and
 * answers from a JSON file of name -> value it re-reads on every request (a test "puts" a
 * parameter by rewriting the file). Every request is appended to <file>.log.
 *
 * Usage: node ssm-stand-in.mjs <parameters.json>; prints the port on its first line.
 */
import * as fs from "node:fs";
import * as http from "node:http";

const file = process.argv[2];
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const target = String(req.headers["x-amz-target"] ?? "");
    const request = body === "" ? {} : JSON.parse(body);
    fs.appendFileSync(
      `${file}.log`,
      `${JSON.stringify({ target, request })}\n`,
    );
    const reply = (status, data) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify(data));
    };
    if (target !== "AmazonSSM.GetParameter")
      return reply(400, {
        __type: "InvalidAction",
        message: `not a stand-in for ${target}`,
      });
    const parameters = JSON.parse(fs.readFileSync(file, "utf8"));
    if (!Object.hasOwn(parameters, request.Name))
      return reply(400, {
        __type: "ParameterNotFound",
        message: `${request.Name} not found`,
      });
    reply(200, {
      Parameter: {
        Name: request.Name,
        Type: "SecureString",
        Value: parameters[request.Name],
        Version: 1,
        ARN: `arn:aws:ssm:us-east-1:123456789012:parameter${request.Name}`,
        DataType: "text",
      },
    });
  });
});
// Written as text: console.log would colour a number under FORCE_COLOR.
server.listen(0, "127.0.0.1", () =>
  process.stdout.write(`${server.address().port}\n`),
);
