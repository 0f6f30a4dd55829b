import { ServiceError } from "../../core/errors.js";
import type { Codec } from "../../protocols/codec.js";

/** S3's REST routing and XML rendering (to be written). */
export const s3Codec: Codec = {
  decode() {
    throw new ServiceError("NotImplemented", "S3 is not implemented yet", 501);
  },
  encode() {
    throw new Error("not implemented");
  },
  encodeError() {
    throw new Error("not implemented");
  },
};
