// TypeScript definitions for the rtchub browser app and its signaling protocol
// (seed 000's types/webrtc.d.ts, matching what rtchub really sends: see
// docs/protocol.md). Plain ES modules use them through JSDoc:
//   /** @type {import('./types/webrtc').AppState} */

/** Every `type` of the rooms protocol on /ws. */
export type MessageType =
  | 'join' | 'joined' | 'leave' | 'room_members' | 'ping' | 'pong'
  | 'offer' | 'answer' | 'candidate' | 'hangup' | 'error'
  // call rooms (seed 003), see docs/protocol.md "Call rooms"
  | 'sfu_offer' | 'sfu_answer' | 'sfu_ignored' | 'sfu_candidate' | 'publish' | 'media_state'
  | 'participants' | 'tracks' | 'active_speaker' | 'recording' | 'chat' | 'record';

/** Stable `code` values of `error` frames. */
export type ErrorCode =
  | 'bad_message' | 'missing_field' | 'invalid_field' | 'invalid_sdp' | 'unknown_type'
  | 'invalid_id' | 'not_in_room' | 'already_in_room' | 'peer_not_found' | 'id_taken'
  | 'room_full' | 'too_many_rooms' | 'queue_full' | 'rate_limited' | 'server_error'
  | 'topology_mismatch' | 'unauthorized' | 'connection_failed' | 'signaling_timeout';

/** A call room's participant (`participants` frames, `joined.participants`). */
export interface CallParticipant {
  id: string; display_name: string; metadata: Record<string, unknown>;
  audio: boolean; video: boolean; screen: boolean; joined_at: number;
}

/** A track published in an SFU room (`tracks` frames, `joined.tracks`). */
export interface CallTrack {
  track_id: string; publisher: string; kind: 'audio' | 'video';
  source: 'microphone' | 'camera' | 'screen'; stream_id: string; muted: boolean;
}

/** The SFU session of the page (`state.sfu`), read-only. */
export interface SfuSession {
  /** The one connection with the server (null when not in an SFU call). */
  pc: RTCPeerConnection | null;
  participants: Map<string, CallParticipant>;
  tracks: Map<string, CallTrack>;
  grants: { publish: boolean; subscribe: boolean; record: boolean; admin: boolean };
  recording: { state: string; started_at?: number; files?: string[]; [key: string]: unknown };
  offersSent: number; serverOffers: number; ignored: number; collisions: number;
  connections: number; rejoins: number;
}

/**
 * One JSON frame. `type` is a string because `/ws` also carries other
 * dialects (the voice relay greets with `available_streams`): ignore the
 * types you do not know.
 */
export interface Message {
  type: MessageType | string;
  /** Room ID: on join, and on everything the server sends about a room. */
  room?: string;
  /** Sender's client ID (set by the server on relayed frames); on join, the ID you ask for. */
  from?: string;
  /** Recipient's client ID on offer/answer/candidate/hangup. */
  to?: string;
  sdp?: RTCSessionDescriptionInit;
  /** `null` means end of candidates. */
  candidate?: RTCIceCandidateInit | null;
  /** Everyone in the room, in join order, yourself included (joined, room_members). */
  members?: string[];
  /** Resume token: sent with `joined`; send it back with `join` to resume your ID. */
  token?: string;
  code?: ErrorCode | string;
  error?: string;
  /** Same text as `error` (for seed 002's clients). */
  message?: string;
  /** Seconds to wait, on rate-limit errors. */
  retry_after?: number;
}

export interface JoinMessage extends Message { type: 'join'; room: string; from?: string; token?: string; }
export interface JoinedMessage extends Message { type: 'joined'; room: string; from: string; members: string[]; token: string; }
export interface RoomMembersMessage extends Message { type: 'room_members'; room: string; members: string[]; }
export interface ErrorMessage extends Message { type: 'error'; code: ErrorCode; error: string; message: string; }

/** WebSocket close codes the server uses. */
export const enum CloseCode {
  GoingAway = 1001,        // server shutting down: reconnect
  ProtocolError = 1002,
  PolicyViolation = 1008,  // not reading fast enough
  TooBig = 1009,
  Replaced = 4001,         // this identity was resumed by another connection
}

/** What a peer tells us over the data channel about its own media. */
export interface RemoteStatus { muted: boolean; cameraOff: boolean; sharing: boolean; }

/** Connection quality from getStats(), refreshed about every 0.7 s. */
export interface PeerStats {
  rttMs: number | null; kbps: number; lossPct: number; framesDecoded: number;
  frameWidth: number; frameHeight: number; audioLevel: number; audioEnergy: number;
  bytes: number; at: number;
}

export interface Peer {
  id: string;
  pc: RTCPeerConnection;
  /** Perfect negotiation role: the polite side rolls back its own offer on glare. */
  polite: boolean;
  makingOffer: boolean;
  ignoreOffer: boolean;
  /** Candidates received before the remote description, added once it is set. */
  pendingCandidates: (RTCIceCandidateInit | null)[];
  /** Negotiated data channel (id 0): chat and status. */
  dc?: RTCDataChannel;
  // rtchub extras
  stream: MediaStream;
  remote: RemoteStatus;
  stats: PeerStats | null;
  /** Remote descriptions applied (a screen share does not add one). */
  negotiations: number;
  /** Offers that collided with ours (glare). */
  collisions: number;
  /** The o= session id of the remote SDP: a new one means the remote started a new call. */
  remoteSession: string | null;
  /** Watchdog: retries since the call was last connected (0 while connected). */
  attempt: number;
  /** Watchdog: retries over the whole call (an ICE restart, then fresh offers). */
  retries: number;
  // SFU rooms: `pc` is the page's one connection with the server
  sfu?: boolean;
  /** Their shared screen (a tile of its own), or null. */
  screen?: MediaStream | null;
  displayName?: string;
  /** Ids of the receiver tracks that are theirs (what getStats() calls trackIdentifier). */
  trackIds?: Set<string>;
  /** Their connection as the server measures it (the last `quality` frame's entry). */
  serverQuality?: ServerQuality;
}

/** One participant's entry of an SFU room's `quality` frame (docs/protocol.md). */
export interface ServerQuality {
  id: string;
  score: number;
  grade: 'good' | 'fair' | 'poor';
  packet_loss: number;
  jitter: number;
  latency: number | null;
  bitrate_kbps: number;
  warnings: string[];
  send_loss: number | null;
  receive_loss: number | null;
  send_jitter: number | null;
  receive_jitter: number | null;
  send_kbps: number;
  receive_kbps: number;
  video: boolean;
  measured_at: number;
}

export type RoomState = 'idle' | 'connecting' | 'joined' | 'reconnecting' | 'calling';

export interface AppState {
  myId: string;
  ws: WebSocket | null;
  roomId: string;
  roomState: RoomState;
  localStream: MediaStream | null;
  screenStream: MediaStream | null;
  usingScreen: boolean;
  muted: boolean;
  cameraOff: boolean;
  peers: Map<string, Peer>;
  recorder: MediaRecorder | null;
  recordedChunks: Blob[];
  // rtchub extras
  members: string[];
  resumeToken: string | null;
  rtcConfig: RTCConfiguration;
  /** Call everyone already in the room on join (`?autocall=0` turns it off). */
  autoCall: boolean;
  activeSpeaker?: string | null;
  lastError: { code: string | null; text: string } | null;
  reconnectAttempt: number;
  /** The room's topology, from `joined` ('mesh' until then). */
  topology: 'mesh' | 'sfu';
  /** Asked for on join (`?topology=`, the lobby's "Through the server"); '' lets the room decide. */
  wantTopology: '' | 'mesh' | 'sfu';
  /** Sent as the join's `access_token` (`?access_token=`). */
  accessToken: string;
  sfu: SfuSession | null;
  /** SFU rooms: your own connection as the server measures it (from `quality`). */
  myQuality?: ServerQuality;
}

declare global {
  var state: AppState;
  function connect(roomId: string, myId?: string): Promise<void>;
  function disconnect(): void;
  function callPeer(peerId: string): Peer | null;
  function hangupPeer(peerId: string): void;
  function hangupAll(): void;
  function toggleMute(): boolean;
  function toggleCamera(): boolean;
  function startScreenShare(): Promise<boolean>;
  function stopScreenShare(): Promise<void>;
  function startRecording(): boolean;
  function stopRecording(): Promise<Blob | null>;
  /** Returns how many peers it was sent to. */
  function sendChat(text: string): number;
  /** Reassign to observe state changes; internal code calls the current global. */
  var setRoomState: (next: RoomState) => void;
  var rtchub: {
    useScreenStream(stream: MediaStream): Promise<boolean>;
    dropSocket(): void;
    backoffDelay(attempt: number): number;
    holdSignals(on: boolean): void;
    /** Types of the frames held now (relayed ones and the server's sfu_*), in order. */
    heldSignals(): string[];
    /** Lose the next `count` relayed frames of `type`, as a lossy path would (tests). */
    loseSignals(type: 'offer' | 'answer' | 'candidate', count?: number): void;
    /** Switch camera or microphone (in the lobby's preview, or in every call). */
    useDevice(kind: 'videoinput' | 'audioinput', deviceId: string): Promise<boolean>;
    /** The watchdog's delays in ms: ICE restart after `restartMs`, fresh offers from `freshMs` doubling to `maxMs`. */
    watchdog: { restartMs: number; freshMs: number; maxMs: number };
    version: number;
  };
}
