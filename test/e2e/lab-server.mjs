// An intranet web server of the data-plane test: listens on every ADDRESS:PORT given, answers
// each request with JSON {"server": "<address>:<port>", "client": "<the source address it saw>"}.
// Prints "ready" once all listeners are bound.
import * as http from "node:http";

const endpoints = process.argv.slice(2);
let bound = 0;
for (const endpoint of endpoints) {
  const [host, port] = endpoint.split(":");
  http
    .createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({ server: endpoint, client: req.socket.remoteAddress }) +
          "\n",
      );
    })
    .listen(Number(port), host, () => {
      if (++bound === endpoints.length) console.log("ready");
    });
}
