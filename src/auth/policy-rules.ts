// Glance's default policy rules (the secure-RBAC defaults Glance enforces since 2023.1).
// `%(project_id)s` is the target's project: for an image, its owner.

const ADMIN = 'role:admin';
const PROJECT_MEMBER = 'role:member and project_id:%(project_id)s';
const PROJECT_READER = 'role:reader and project_id:%(project_id)s';
const READ_NAMESPACE = `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`;

export const DEFAULT_RULES: Record<string, string> = {
  context_is_admin: ADMIN,
  default: '',
  add_image: `${ADMIN} or (${PROJECT_MEMBER} and project_id:%(owner)s)`,
  get_image:
    `${ADMIN} or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s` +
    ` or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))`,
  get_images: `${ADMIN} or (${PROJECT_READER})`,
  modify_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  delete_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  publicize_image: ADMIN,
  communitize_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  download_image:
    `${ADMIN} or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s` +
    ` or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))`,
  upload_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  get_image_location: `${ADMIN} or (${PROJECT_READER})`,
  set_image_location: `${ADMIN} or (${PROJECT_MEMBER})`,
  delete_image_location: ADMIN,
  // The locations API (Glance 2024.2): services (Nova, Cinder) register data they wrote themselves.
  service_api: 'role:service or role:admin',
  add_image_location: `rule:service_api or (${PROJECT_MEMBER} and project_id:%(owner)s)`,
  fetch_image_location: 'rule:service_api',
  // The cache API (2.14–2.16).
  cache_list: ADMIN,
  cache_delete: ADMIN,
  cache_image: ADMIN,
  add_member: `${ADMIN} or (${PROJECT_MEMBER})`,
  delete_member: `${ADMIN} or (${PROJECT_MEMBER})`,
  get_member: `${ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)`,
  get_members: `${ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)`,
  modify_member: `${ADMIN} or (role:member and project_id:%(member_id)s)`,
  deactivate: `${ADMIN} or (${PROJECT_MEMBER})`,
  reactivate: `${ADMIN} or (${PROJECT_MEMBER})`,
  copy_image: ADMIN,
  tasks_api_access: ADMIN,
  get_task: '',
  get_tasks: '',
  add_task: '',
  modify_task: '',
  stores_info_detail: ADMIN,
  manage_image_cache: ADMIN,

  // Metadata definitions: anyone with reader may read the namespaces of their project and the public
  // ones; only admins write.
  metadef_default: '',
  metadef_admin: ADMIN,
  get_metadef_namespace: READ_NAMESPACE,
  get_metadef_namespaces: `${ADMIN} or (${PROJECT_READER})`,
  modify_metadef_namespace: 'rule:metadef_admin',
  add_metadef_namespace: 'rule:metadef_admin',
  delete_metadef_namespace: 'rule:metadef_admin',
  get_metadef_object: READ_NAMESPACE,
  get_metadef_objects: READ_NAMESPACE,
  modify_metadef_object: 'rule:metadef_admin',
  add_metadef_object: 'rule:metadef_admin',
  delete_metadef_object: 'rule:metadef_admin',
  list_metadef_resource_types: READ_NAMESPACE,
  get_metadef_resource_type: READ_NAMESPACE,
  add_metadef_resource_type_association: 'rule:metadef_admin',
  remove_metadef_resource_type_association: 'rule:metadef_admin',
  get_metadef_property: READ_NAMESPACE,
  get_metadef_properties: READ_NAMESPACE,
  modify_metadef_property: 'rule:metadef_admin',
  add_metadef_property: 'rule:metadef_admin',
  remove_metadef_property: 'rule:metadef_admin',
  get_metadef_tag: READ_NAMESPACE,
  get_metadef_tags: READ_NAMESPACE,
  modify_metadef_tag: 'rule:metadef_admin',
  add_metadef_tag: 'rule:metadef_admin',
  add_metadef_tags: 'rule:metadef_admin',
  delete_metadef_tag: 'rule:metadef_admin',
  delete_metadef_tags: 'rule:metadef_admin',
};

// The deprecated rules Glance still registers beside them. With `[oslo_policy] enforce_new_defaults =
// False`, oslo.policy ORs each with its new rule unless the policy file sets that rule itself.
const DEFAULT = 'rule:default';
const METADEF_DEFAULT = 'rule:metadef_default';
const MANAGE_CACHE = 'rule:manage_image_cache';

export const DEPRECATED_RULES: Record<string, string> = {
  default: 'rule:context_is_admin',
  add_image: DEFAULT,
  delete_image: DEFAULT,
  get_image: DEFAULT,
  get_images: DEFAULT,
  modify_image: DEFAULT,
  communitize_image: DEFAULT,
  download_image: DEFAULT,
  upload_image: DEFAULT,
  delete_image_location: DEFAULT,
  get_image_location: DEFAULT,
  set_image_location: DEFAULT,
  add_member: DEFAULT,
  delete_member: DEFAULT,
  get_member: DEFAULT,
  get_members: DEFAULT,
  modify_member: DEFAULT,
  deactivate: DEFAULT,
  reactivate: DEFAULT,
  get_task: DEFAULT,
  get_tasks: DEFAULT,
  add_task: DEFAULT,
  get_metadef_namespace: METADEF_DEFAULT,
  get_metadef_namespaces: METADEF_DEFAULT,
  get_metadef_object: METADEF_DEFAULT,
  get_metadef_objects: METADEF_DEFAULT,
  list_metadef_resource_types: METADEF_DEFAULT,
  get_metadef_resource_type: METADEF_DEFAULT,
  get_metadef_property: METADEF_DEFAULT,
  get_metadef_properties: METADEF_DEFAULT,
  get_metadef_tag: METADEF_DEFAULT,
  get_metadef_tags: METADEF_DEFAULT,
  cache_image: MANAGE_CACHE,
  cache_list: MANAGE_CACHE,
  cache_delete: MANAGE_CACHE,
  stores_info_detail: 'rule:context_is_admin',
};
