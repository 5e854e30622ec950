// Connects the way the original's front end does and prints every message it hears,
// one JSON object a line, until its standard input closes.
// Usage: node listen.cjs http://127.0.0.1:PORT   (socket.io-client resolved via NODE_PATH)
const { io } = require("socket.io-client");
const { version } = require("socket.io-client/package.json");

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const socket = io(process.argv[2], { transports: ["websocket"], reconnection: false });

socket.on("connect", () => print({ type: "connected", version }));
socket.on("connect_error", (error) => {
  print({ type: "connect_error", message: String(error && error.message) });
  process.exit(1);
});
socket.onAny((event, ...args) => print({ type: "message", event, args }));

process.stdin.on("end", () => {
  socket.close();
  process.exit(0);
});
process.stdin.resume();
