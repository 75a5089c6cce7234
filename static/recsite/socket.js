// The reconnecting socket ships with the sync app; the dashboard's modules
// import it from here.
import { ReconnectingSocket } from "../sync/socket.js";

export { ReconnectingSocket };
