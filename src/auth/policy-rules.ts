// Glance's default policy rules (the secure-RBAC defaults Glance enforces since 2023.1).
// `%(project_id)s` is the target's project: for an image, its owner.

const ADMIN = 'role:admin';
const PROJECT_MEMBER = 'role:member and project_id:%(project_id)s';
const PROJECT_READER = 'role:reader and project_id:%(project_id)s';

export const DEFAULT_RULES: Record<string, string> = {
  context_is_admin: ADMIN,
  default: '',
  admin_or_owner: 'is_admin:True or project_id:%(owner)s',
  add_image: `${ADMIN} or (${PROJECT_MEMBER} and project_id:%(owner)s)`,
  get_image: `${ADMIN} or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s`
    + ` or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))`,
  get_images: `${ADMIN} or (${PROJECT_READER})`,
  modify_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  delete_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  publicize_image: ADMIN,
  communitize_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  download_image: `${ADMIN} or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s`
    + ` or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))`,
  upload_image: `${ADMIN} or (${PROJECT_MEMBER})`,
  get_image_location: `${ADMIN} or (${PROJECT_READER})`,
  set_image_location: `${ADMIN} or (${PROJECT_MEMBER})`,
  delete_image_location: ADMIN,
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
};
