// The one error table: a stable code, the HTTP status Glance answers with, and the message it shows.
// Services throw these; http/errors.ts renders them in Glance's body shapes.

type Template = (...args: any[]) => string;
/**
 * How WebOb lays the message out in the body: as its explanation (the default), as its detail after
 * the status's standard explanation (`detail`: Glance raises `HTTPForbidden(msg)`), as the whole body
 * (`whole`: WebOb's own template for the status, or Glance's `body_template='${explanation}'`), or as
 * the detail under WebOb's 415 sentence, which names the request's Content-Type (`media-type`: every 415).
 */
export type ErrorLayout = 'explanation' | 'detail' | 'whole' | 'media-type';

interface ErrorSpec {
  status: number;
  message: Template;
  /** 'explanation' unless said. */
  layout?: ErrorLayout;
}

const table = {
  // generic request problems
  BAD_REQUEST: { status: 400, message: (text: string) => text },
  NUL_CHARACTER: { status: 400, message: () => 'Null characters are not allowed in requests.' },
  MALFORMED_JSON: { status: 400, message: () => 'Malformed JSON in request body.' },
  JSON_TOO_DEEP: { status: 400, message: (max: number) => `Malformed JSON in request body: arrays and objects nest deeper than ${max} levels.` },
  // A JSON body that stopped arriving (client_socket_timeout), or whose client hung up before its end.
  BODY_STALLED: { status: 408, message: (seconds: number) => `The request body was cut off: no data arrived for ${seconds} seconds.` },
  BODY_CUT_OFF: { status: 400, message: () => 'The request body ended before its announced length: the client closed the connection.' },
  UNEXPECTED_BODY_TYPE: { status: 400, message: () => 'Unexpected body type. Expected list/dict.' },
  BODY_NOT_EXPECTED: { status: 400, message: () => 'A body is not expected with this request.' },
  JSON_LONE_SURROGATE: { status: 400, message: () => 'Malformed JSON in request body: a string holds half of a UTF-16 surrogate pair.' },
  BODY_EXPECTED: { status: 400, message: () => 'Body expected in request.' },
  SCHEMA_MISMATCH: { status: 400, message: (name: string, detail: string) => `Provided object does not match schema '${name}': ${detail}` },
  REQUEST_TOO_LARGE: { status: 413, message: () => 'Request is too large.' },
  // Glance's words (its context middleware returns this error instead of raising it, so its requests go on).
  REQUEST_ID_TOO_LONG: { status: 431, message: (max: number) => `x-openstack-request-id is too long, max size ${max}` },
  NOT_FOUND: { status: 404, message: () => 'The resource could not be found.' },
  // WebOb's own templates for these two statuses.
  METHOD_NOT_ALLOWED: { status: 405, message: (method: string) => `The method ${method} is not allowed for this resource. <br /><br />\n`, layout: 'whole' },
  NOT_IMPLEMENTED: {
    status: 501,
    message: (method: string) => `\nThe request method ${method} is not implemented for this server. <br /><br />\n`,
    layout: 'whole',
  },
  // Glance's words for a query that is not UTF-8 (in a path, eventlet answers an empty 500).
  BAD_URL: {
    status: 400,
    message: () => 'Error decoding your request. Either the URL or the request body contained characters that could not be decoded by Glance',
  },
  TRANSFER_CODING_NOT_IMPLEMENTED: { status: 501, message: (coding: string) => `Transfer-Encoding ${coding} is not implemented.` },
  URI_TOO_LONG: { status: 414, message: () => 'The request URL is too long.' },
  HEADER_LINE_TOO_LONG: { status: 400, message: () => 'Header Line Too Long' },
  // Both 415s: WebOb's sentence about the request's Content-Type comes first (http/errors.ts).
  INVALID_CONTENT_TYPE: { status: 415, message: (ct: string | undefined) => `Invalid content type ${ct ?? 'None'}`, layout: 'media-type' },
  PATCH_MEDIA_TYPE: { status: 415, message: (allowed: string) => `Image PATCH expects Content-Type one of: ${allowed}`, layout: 'media-type' },
  UNAUTHORIZED: {
    status: 401,
    message: () =>
      'This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.',
  },
  FORBIDDEN: { status: 403, message: (text: string) => text },
  READ_ONLY: { status: 403, message: () => 'Read-only access', layout: 'detail' },
  POLICY_DENIED: { status: 403, message: (rule: string) => `You are not authorized to complete ${rule} action.` },
  CONFLICT: { status: 409, message: (text: string) => text },
  INTERNAL: { status: 500, message: () => 'The server has either erred or is incapable of performing the requested operation.' },
  SERVICE_UNAVAILABLE: { status: 503, message: (text: string) => text },
  STAGE_HOST_TIMEOUT: { status: 504, message: () => 'Stage host is unavailable', layout: 'detail' },
  STAGE_HOST_BAD_GATEWAY: { status: 502, message: () => 'Stage host is unavailable', layout: 'detail' },
  // The stage host's own refusal, with its status (set where it is raised) and, as Glance's, no text.
  STAGE_HOST_REFUSED: { status: 502, message: () => '' },
  STAGE_HOST_LOOP: {
    status: 502,
    message: (host: string) =>
      `Stage host is unavailable: this request was forwarded here by another node, and this node would forward it again, to ${host} (does worker_self_reference_url name each node as the others reach it?)`,
    layout: 'detail',
  },

  // images
  IMAGE_NOT_FOUND: { status: 404, message: (id: string) => `No image found with ID ${id}` },
  IMAGE_NOT_FOUND_SHORT: { status: 404, message: (id: string) => `Image ${id} not found.` },
  IMAGE_NOT_FOUND_TO_DELETE: { status: 404, message: (id: string) => `Failed to find image ${id} to delete` },
  IMAGE_ID_EXISTS: { status: 409, message: (id: string) => `Image ID ${id} already exists!` },
  ATTRIBUTE_READ_ONLY: { status: 403, message: (key: string) => `Attribute '${key}' is read-only.` },
  ATTRIBUTE_RESERVED: { status: 403, message: (key: string) => `Attribute '${key}' is reserved.` },
  // The same refusal on create, which Glance words as a detail.
  ATTRIBUTE_RESERVED_ON_CREATE: { status: 403, message: (key: string) => `Attribute '${key}' is reserved.`, layout: 'detail' },
  // property_protection_file forbids the operation (Glance raises the same ReservedProperty text).
  PROPERTY_PROTECTED: { status: 403, message: (key: string) => `Attribute '${key}' is reserved.` },
  PROPERTY_NOT_REMOVABLE: { status: 403, message: (key: string) => `Property ${key} may not be removed.`, layout: 'detail' },
  PROPERTY_MISSING: { status: 409, message: (key: string) => `Property ${key} does not exist.`, layout: 'detail' },
  PROPERTY_PRESENT: { status: 409, message: (key: string) => `Property ${key} already present.`, layout: 'detail' },
  VALUE_TOO_LARGE: {
    status: 400,
    message: (value: unknown, param: string, max: number) => `Invalid value '${value}' for parameter '${param}': Cannot be greater than ${max}`,
  },
  // Glance's database layer words it (min_ram and min_disk are 32-bit columns).
  COLUMN_OUT_OF_RANGE: { status: 400, message: (param: string, max: number) => `'${param}' value out of range, must not exceed ${max}.` },
  PROPERTY_NAME_INVALID: { status: 400, message: (key: string) => `Property name '${key}' is not allowed.` },
  PROPERTY_KEY_TOO_LONG: { status: 400, message: () => 'Custom property should not be greater than 255 characters.' },
  NEGATIVE_VALUE: { status: 400, message: (value: unknown, param: string) => `Invalid value '${value}' for parameter '${param}': Cannot be a negative value` },
  OWNER_NOT_PERMITTED: { status: 403, message: (owner: string) => `You are not permitted to create images owned by '${owner}'.` },
  // The add_image rule's refusal of another project's owner: Glance's words, without the full stop, as a detail.
  OWNER_NOT_PERMITTED_BY_RULE: { status: 403, message: (owner: string) => `You are not permitted to create images owned by '${owner}'`, layout: 'detail' },
  OWNER_ADMIN_ONLY: { status: 403, message: () => "Owner can't be updated by non admin.", layout: 'detail' },
  FORMAT_ONLY_QUEUED: { status: 403, message: (attr: string) => `Attribute ${attr} can be only replaced for a queued image.` },
  IMAGE_PROTECTED: { status: 403, message: (id: string) => `Image ${id} is protected and cannot be deleted.` },
  // `gaze scrub --restore` (glance-scrubber --restore): Glance's words where it has them.
  RESTORE_IMAGE_NOT_FOUND: { status: 404, message: (id: string) => `No image found with ID ${id}` },
  RESTORE_NOT_PENDING_DELETE: {
    status: 409,
    message: (status: string) => `cannot restore the image from ${status} to active (wanted from_state=pending_delete)`,
  },
  RESTORE_STORE_UNKNOWN: { status: 503, message: (id: string, where: string) => `image ${id} cannot be restored now: its data at ${where} cannot be checked` },
  RESTORE_NO_DATA: { status: 409, message: (id: string) => `image ${id} has no whole data left in any store: it cannot be restored` },
  // Glance's delete raises the same transition error as a 400.
  DELETE_STATUS_TRANSITION: { status: 400, message: (from: string, to: string) => `Image status transition from ${from} to ${to} is not allowed` },
  STATUS_TRANSITION: { status: 409, message: (from: string, to: string) => `Image status transition from ${from} to ${to} is not allowed` },
  DEACTIVATE_NOT_ALLOWED: { status: 403, message: (status: string) => `Not allowed to deactivate image in status '${status}'` },
  REACTIVATE_NOT_ALLOWED: { status: 403, message: (status: string) => `Not allowed to reactivate image in status '${status}'` },
  PROPERTY_QUOTA: {
    status: 413,
    message: (attempted: number, max: number) =>
      `The limit has been exceeded on the number of allowed image properties. Attempted: ${attempted}, Maximum: ${max}`,
  },
  TAG_QUOTA: {
    status: 413,
    message: (attempted: number, max: number) => `The limit has been exceeded on the number of allowed image tags. Attempted: ${attempted}, Maximum: ${max}`,
  },
  LOCATIONS_INVISIBLE: { status: 403, message: (verb: string) => `It's not allowed to ${verb} locations if locations are invisible.` },
  LOCATIONS_STATUS: { status: 409, message: (verb: string, status: string) => `It's not allowed to ${verb} locations if image status is ${status}.` },
  LOCATIONS_EMPTY: { status: 403, message: () => 'Cannot set locations to empty list.', layout: 'detail' },
  LOCATIONS_NOT_EMPTY: { status: 400, message: (current: string) => `Original locations is not empty: ${current}` },
  LOCATION_LAST: { status: 403, message: () => 'Cannot remove last location in the image.', layout: 'detail' },
  LOCATION_INVALID: { status: 400, message: () => 'Invalid location' },
  LOCATION_SIZE_MISMATCH: {
    status: 400,
    message: (url: string, found: number, size: number) => `Invalid location: ${url} holds ${found} bytes, the image has ${size}.`,
  },
  LOCATION_DUPLICATE: { status: 400, message: (url: string) => `The location ${url} already exists` },
  LOCATION_ADD_POSITION: { status: 400, message: () => 'Invalid position for adding a location.' },
  LOCATION_REMOVE_POSITION: { status: 400, message: () => 'Invalid position for removing a location.' },
  LOCATION_QUOTA: {
    status: 413,
    message: (attempted: number, max: number) =>
      `The limit has been exceeded on the number of allowed image locations. Attempted: ${attempted}, Maximum: ${max}`,
  },
  /** validation_data of a location that disagrees with the image or is malformed (Glance's texts). */
  VALIDATION_DATA_CONFLICT: { status: 409, message: (text: string) => text },
  IMAGE_NOT_OWNED: { status: 403, message: () => 'You do not own this image' },
  CACHE_API_UNSUPPORTED: { status: 404, message: () => 'Caching via API is not supported at this site.' },
  CACHE_IMAGE_NOT_FOUND: { status: 404, message: (id: string) => `Image ${id} not found.` },
  CACHE_QUEUE_NOT_ACTIVE: { status: 400, message: () => 'Only images with status active can be targeted for queueing' },
  CACHE_CLEAR_TARGET: { status: 400, message: () => "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string." },
  LOCATION_API_HTTP_ONLY: { status: 403, message: () => 'http store must be enabled to use location API by normal user.' },

  // list
  INVALID_SORT_KEY: { status: 400, message: (key: string, allowed: string) => `Invalid sort key: ${key}. It must be one of the following: ${allowed}.` },
  INVALID_SORT_DIR: { status: 400, message: (dir: string) => `Invalid sort direction: ${dir}` },
  // Glance's database layer words it, where the API checks no sort key (the task list).
  SORT_KEY_NOT_VALID: { status: 400, message: () => 'Sort key supplied was not valid.' },
  MARKER_NOT_FOUND: { status: 400, message: (id: string) => `No image found with ID ${id}` },
  MARKER_NOT_VISIBLE: { status: 403, message: (id: string) => `Forbidding request, image ${id} not visible` },

  // data
  FORMATS_REQUIRED: {
    status: 400,
    message: (missing: string[]) =>
      missing.length === 1 ? `Property ${missing[0]} must be set prior to saving data.` : `Properties ${missing.join(', ')} must be set prior to saving data.`,
  },
  UPLOAD_NOT_ALLOWED: { status: 403, message: (id: string) => `Not allowed to upload image data for image ${id}` },
  UPLOAD_STALLED: { status: 408, message: (why: string) => `The upload was cut off: ${why}. The image data was not kept.` },
  // The data is not what the image claims, or fails the safety checks of its format (spec §2.2).
  IMAGE_FORMAT_REJECTED: { status: 415, message: (reason: string) => reason, layout: 'media-type' },
  IMAGE_TOO_LARGE: { status: 413, message: () => 'The incoming image is too large: The provided image is too large.' },
  STORAGE_QUOTA: {
    status: 413,
    message: (size: number, remaining: number) =>
      `Image exceeds the storage quota: The size of the data ${size} will exceed the limit. ${remaining} bytes remaining.`,
  },
  OVER_LIMIT: {
    status: 413,
    message: (projectId: string, over: string[]) =>
      'The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.' +
      `\n\nThe response body:\nProject ${projectId} is over a limit for [${over.join(', ')}]`,
  },
  // Why (Keystone's address, the service user) is logged, not told.
  LIMITS_UNAVAILABLE: { status: 503, message: () => 'Unified limits cannot be read now; try again later.' },
  STORE_ADD_DISABLED: { status: 410, message: () => 'Error in store configuration. Adding images to store is disabled.' },
  STORAGE_FULL: { status: 413, message: (detail: string) => `Image storage media is full: ${detail}` },
  STORAGE_PERMISSION: { status: 503, message: (detail: string) => `Insufficient permissions on image storage media: ${detail}` },
  DELETED_DURING_UPLOAD: {
    status: 410,
    message: (id: string) => `Image ${id} could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded.`,
  },
  UPLOAD_INCOMPLETE: { status: 400, message: (expected: number, got: number) => `Upload incomplete: expected ${expected} bytes, received ${got}.` },
  CHECKSUM_MISMATCH: { status: 400, message: (attr: string) => `${attr} of uploaded data is different from current value set on the image.` },
  DOWNLOAD_DEACTIVATED: { status: 403, message: () => 'The requested image has been deactivated. Image data download is forbidden.' },
  // Glance raises these as WebOb's 416 with a detail, under "The Range requested is not available.".
  RANGE_INVALID: { status: 416, message: () => 'Invalid Range header.', layout: 'detail' },
  RANGE_START_INVALID: {
    status: 416,
    message: (size: number) => `Invalid start position in Range header. Start position MUST be in the inclusive range [0, ${size - 1}].`,
    layout: 'detail',
  },
  CONTENT_RANGE_INVALID: { status: 416, message: () => 'Invalid Content-Range header.', layout: 'detail' },
  CONTENT_RANGE_STOP_INVALID: {
    status: 416,
    message: (size: number) => `Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, ${size - 1}].`,
    layout: 'detail',
  },
  CONTENT_RANGE_START_INVALID: {
    status: 416,
    message: (size: number) => `Invalid start position in Content-Range header. Start position MUST be in the inclusive range [0, ${size - 1}].`,
    layout: 'detail',
  },
  RANGE_MULTIPLE: {
    status: 400,
    message: () => 'Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.',
  },
  STORE_UNKNOWN: { status: 400, message: (store: string) => `Store for identifier ${store} not found` },
  DATA_UNAVAILABLE: { status: 503, message: (id: string) => `Image data for image ${id} is not available from any of its locations.` },

  // tags
  TAG_UPDATE_FORBIDDEN: { status: 403, message: (id: string) => `Not allowed to update tags for image ${id}.` },
  TAG_DELETE_FORBIDDEN: { status: 403, message: (id: string) => `Not allowed to delete tags for image ${id}.` },
  // Glance's words, its quota error's inside, and its closing colon.
  TAG_LIMIT: {
    status: 413,
    message: (id: string, attempted: number, maximum: number) =>
      `Image tag limit exceeded for image ${id}: The limit has been exceeded on the number of allowed image tags. Attempted: ${attempted}, Maximum: ${maximum}:`,
  },

  // members
  MEMBER_CREATE_FORBIDDEN: { status: 403, message: (id: string) => `Not allowed to create members for image ${id}.` },
  MEMBER_LIST_FORBIDDEN: { status: 403, message: (id: string) => `Not allowed to list members for image ${id}: Only shared images have members.` },
  MEMBER_UPDATE_FORBIDDEN: { status: 403, message: (id: string) => `Not allowed to update members for image ${id}.` },
  MEMBER_DELETE_FORBIDDEN: { status: 403, message: (id: string) => `Not allowed to delete members for image ${id}.` },
  MEMBER_DUPLICATE: { status: 409, message: (member: string, id: string) => `Member ${member} is duplicated for image ${id}` },
  MEMBER_LIMIT: {
    status: 413,
    message: (id: string, attempted: number, maximum: number) =>
      `Image member limit exceeded for image ${id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: ${attempted}, Maximum: ${maximum}:`,
  },
  /** GET of one membership of an image that is not shared: Glance turns its 403 into a 404, words kept. */
  MEMBERS_ONLY_SHARED: { status: 404, message: () => 'Only shared images have members.' },
  /** GET of one membership the member policy refuses: Glance turns its 403 into a 404, words kept. */
  MEMBER_POLICY_HIDDEN: { status: 404, message: (rule: string) => `You are not authorized to complete ${rule} action.` },
  MEMBER_NOT_FOUND: { status: 404, message: (member: string, id: string) => `${member} not found in the member list of the image ${id}.` },

  // import
  METHOD_NOT_AVAILABLE: { status: 404, message: (method: string) => `'${method}' method is not available at this site.` },
  STAGED_DATA_EXISTS: { status: 409, message: (id: string) => `The image ${id} has data on staging` },
  IMPORT_METHOD_REQUIRED: { status: 400, message: () => "Import request requires a 'method' field." },
  IMPORT_NAME_REQUIRED: { status: 400, message: () => "Import request requires a 'name' field." },
  IMPORT_METHOD_UNKNOWN: { status: 400, message: (name: string) => `Unknown import method name '${name}'.` },
  IMPORT_ACTIVE_TARGET: { status: 409, message: () => 'Image with status active cannot be target for import' },
  IMPORT_COPY_NOT_ACTIVE: { status: 409, message: () => 'Only images with status active can be targeted for copying' },
  IMPORT_NEEDS_QUEUED: { status: 409, message: (method: string) => `Image needs to be in 'queued' state to use '${method}' method` },
  IMPORT_NEEDS_STAGING: { status: 409, message: () => "Image needs to be staged before 'glance-direct' method can be used" },
  IMPORT_STAGE_UNFINISHED: { status: 409, message: (id: string) => `The data of image ${id} is still being staged; import it once the stage has finished` },
  IMPORT_FORMAT_REQUIRED: { status: 409, message: (attr: string) => `'${attr}' needs to be set before import` },
  IMPORT_ACTIVE_TASK: { status: 409, message: () => 'Image has active task' },
  IMPORT_LOCK_LOST: { status: 409, message: (id: string) => `New operation on image '${id}' is not permitted as prior operation is still in progress` },
  IMPORT_BOOLEAN: { status: 400, message: (field: string) => `'${field}' must be boolean value only` },
  // Glance's sentence ends with the request's uri (a slip of its format string: None for most methods).
  IMPORT_ALL_STORES_MUST_SUCCEED_SINGLE: { status: 400, message: (uri: string) => `All_stores_must_succeed can only be set with enabled_backends ${uri}` },
  IMPORT_URI_FILTERED: { status: 400, message: (uri: string) => `URI for web-download does not pass filtering: ${uri}` },
  LOCATION_URI_FILTERED: { status: 400, message: (uri: string) => `URI for add location does not pass filtering: ${uri}` },
  IMPORT_ALREADY_IN_STORE: { status: 400, message: (store: string) => `Image is already present at store '${store}'` },
  IMPORT_NOT_RUNNING: { status: 409, message: (id: string) => `Image ${id} has no import in progress.` },
  IMPORT_ALL_STORES_WITH_STORES: { status: 400, message: () => "All_stores parameter can't be used with x-image-meta-store header or stores parameter" },
  IMPORT_STORES_AND_HEADER: { status: 400, message: () => "Stores parameter and x-image-meta-store header can't be both specified" },
  IMPORT_STORE_UNKNOWN: { status: 409, message: (store: string) => `Store for identifier ${store} not found` },
  IMPORT_STORE_READ_ONLY: { status: 409, message: (store: string) => `Store ${store} is read-only; images cannot be imported into it.` },
  STORE_NOT_AVAILABLE: { status: 409, message: (store: string) => `The selected store ${store} is not available on this node.` },
  STORE_IMAGE_NOT_FOUND: { status: 404, message: (id: string) => `Failed to find image ${id}` },
  STORE_DELETE_NOT_ACTIVE: { status: 409, message: () => "It's not allowed to remove image data from store if image status is not 'active'" },
  STORE_DELETE_LAST: { status: 403, message: () => 'Cannot delete image data from the only store containing it. Consider deleting the image instead.' },
  STORE_DELETE_ABSENT: { status: 404, message: (id: string, store: string) => `Image ${id} is not stored in store ${store}.` },
  GLANCE_DOWNLOAD_FIELD: { status: 400, message: (field: string) => `'${field}' needs to be set for glance-download import method` },
  GLANCE_DOWNLOAD_BAD_ID: { status: 400, message: (value: string) => `Remote image id does not look like a UUID: ${value}` },
  MULTISTORE_UNSUPPORTED: { status: 404, message: () => 'Multi backend is not supported at this site.' },

  // metadata definitions
  MD_NAMESPACE_NOT_FOUND: { status: 404, message: (ns: string) => `Metadata definition namespace=${ns} was not found.` },
  MD_NAMESPACE_ID_NOT_FOUND: { status: 404, message: (id: string) => `Metadata definition namespace not found for id=${id}` },
  MD_NAMESPACE_NOT_FOUND_SHORT: { status: 404, message: (ns: string) => `Namespace ${ns} not found` },
  MD_NAMESPACE_EXISTS: { status: 409, message: (ns: string) => `The metadata definition namespace=${ns} already exists.` },
  MD_NAMESPACE_RENAME_CONFLICT: {
    status: 409,
    message: (ns: string) => `Invalid update. It would result in a duplicate metadata definition namespace with the same name of ${ns}`,
  },
  MD_MARKER_NOT_VISIBLE: { status: 403, message: (ns: string) => `Forbidding request, metadata definition namespace=${ns} is not visible.` },
  MD_PROTECTED: { status: 403, message: (kind: string, name: string) => `Metadata definition ${kind} ${name} is protected and cannot be deleted.` },
  MD_OBJECT_EXISTS: { status: 409, message: (name: string, ns: string) => `A metadata definition object with name=${name} already exists in namespace=${ns}.` },
  MD_OBJECT_RENAME_CONFLICT: {
    status: 409,
    message: (name: string, ns: string) =>
      `Invalid update. It would result in a duplicate metadata definition object with the same name=${name} in namespace=${ns}.`,
  },
  MD_OBJECT_NOT_FOUND: { status: 404, message: (name: string) => `Could not find metadata object ${name}` },
  MD_PROPERTY_EXISTS: {
    status: 409,
    message: (name: string, ns: string) => `A metadata definition property with name=${name} already exists in namespace=${ns}.`,
  },
  MD_PROPERTY_RENAME_CONFLICT: {
    status: 409,
    message: (name: string, ns: string) =>
      `Invalid update. It would result in a duplicate metadata definition property with the same name=${name} in namespace=${ns}.`,
  },
  MD_PROPERTY_NOT_FOUND: { status: 404, message: (name: string) => `Could not find property ${name}` },
  MD_PROPERTY_PREFIX: {
    status: 404,
    message: (name: string, prefix: string | null) =>
      `Property ${name} does not start with the expected resource type association prefix of '${prefix ?? 'None'}'.`,
  },
  MD_TAG_EXISTS: {
    status: 409,
    message: (name: string, ns: string) =>
      `A metadata tag with name=${name} already exists in namespace=${ns}. (Please note that metadata tag names are case insensitive).`,
  },
  MD_TAG_NOT_FOUND: { status: 404, message: (name: string) => `Could not find metadata tag ${name}` },
  MD_ASSOCIATION_EXISTS: {
    status: 409,
    message: (rt: string, ns: string) => `The metadata definition resource-type association of resource-type=${rt} to namespace=${ns} already exists.`,
  },
  MD_ASSOCIATION_NOT_FOUND: {
    status: 404,
    message: (rt: string, ns: string) => `The metadata definition resource-type association of resource-type=${rt} to namespace=${ns}, was not found.`,
  },
  MD_RESOURCE_TYPE_NOT_FOUND: { status: 404, message: (rt: string) => `The metadata definition resource-type with name=${rt}, was not found.` },
  MD_RESOURCE_TYPE_NOT_FOUND_TO_DELETE: { status: 404, message: (rt: string) => `Failed to find resource type ${rt} to delete` },
  MD_INVALID_VISIBILITY: { status: 400, message: (value: string) => `Invalid visibility value: ${value}` },
  MD_WRITE_REFUSED: { status: 400, message: (what: string, reason: string) => `Couldn't ${what}: ${reason}` },
  LIMIT_NOT_POSITIVE: { status: 400, message: () => 'limit param must be positive' },
  LIMIT_NOT_INTEGER: { status: 400, message: () => 'limit param must be an integer' },

  // tasks
  // Glance raises it with body_template='${explanation}': the sentence is the whole body.
  TASK_DELETE_NOT_ALLOWED: {
    status: 405,
    message: () =>
      'This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property.',
    layout: 'whole',
  },
  // Glance's database layer words it (its TaskNotFound exception is never shown).
  TASK_NOT_FOUND: { status: 404, message: (id: string) => `Could not find task ${id}` },
} satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof table;

export class GazeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers (Allow, Accept-Patch, WWW-Authenticate). */
  readonly headers: Record<string, string>;
  /** Where the message stands in WebOb's body (see ErrorSpec). */
  readonly layout: ErrorLayout;

  constructor(code: ErrorCode, status: number, message: string, opts: { headers?: Record<string, string>; layout?: ErrorLayout } = {}) {
    super(message);
    this.name = 'GazeError';
    this.code = code;
    this.status = status;
    this.headers = opts.headers ?? {};
    this.layout = opts.layout ?? 'explanation';
  }

  withHeaders(headers: Record<string, string>): this {
    Object.assign(this.headers, headers);
    return this;
  }

  /** What made it (a store's error with its path): logged, never shown to the client. */
  withCause(cause: unknown): this {
    Object.defineProperty(this, 'cause', { value: cause, enumerable: false, writable: true, configurable: true });
    return this;
  }
}

export function gazeError<K extends ErrorCode>(code: K, ...args: Parameters<(typeof table)[K]['message']>): GazeError {
  const spec: ErrorSpec = table[code];
  return new GazeError(code, spec.status, spec.message(...args), { layout: spec.layout ?? 'explanation' });
}

export function isGazeError(err: unknown): err is GazeError {
  return err instanceof GazeError;
}
