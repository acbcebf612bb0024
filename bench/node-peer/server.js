// The Node peer: the seed's relay stack (socket.io 4 + ioredis) serving the same
// events as the backend to the chat load generator: namespace /chat, joinRoom ->
// session-info, every item on chat:<session> -> newMessage to the page's room. Like
// the floor relay it hands out the page id as the session id (no database).
//
//   PORT=18091 REDIS_URL=redis://127.0.0.1:16394/0 node server.js
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const Redis = require("ioredis");

const port = Number(process.env.PORT || 18091);
const server = http.createServer();
const io = new Server(server, { transports: ["websocket"] });
const chat = io.of("/chat");

chat.on("connection", (socket) => {
  socket.on("joinRoom", ({ room } = {}, ack) => {
    if (typeof room !== "string" || !room.startsWith("page-")) return;
    const page = room.slice("page-".length);
    socket.join(room);
    const info = { session_id: page, room, page_id: page };
    socket.emit("session-info", info);
    if (typeof ack === "function") ack(info);
  });
});

const sub = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379/0");
sub.psubscribe("chat:*");
sub.on("pmessage", (_pattern, channel, text) => {
  let item;
  try {
    item = JSON.parse(text);
  } catch {
    return;
  }
  chat.to(`page-${channel.slice("chat:".length)}`).emit("newMessage", item);
});

server.listen(port, "127.0.0.1", () => console.log(`node peer on 127.0.0.1:${port}`));
