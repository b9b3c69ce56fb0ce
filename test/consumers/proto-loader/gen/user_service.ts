import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { BasicInfo as _users_v1_BasicInfo, BasicInfo__Output as _users_v1_BasicInfo__Output } from './users/v1/BasicInfo.js';
import type { QueryBasicInfoByIDRequest as _users_v1_QueryBasicInfoByIDRequest, QueryBasicInfoByIDRequest__Output as _users_v1_QueryBasicInfoByIDRequest__Output } from './users/v1/QueryBasicInfoByIDRequest.js';
import type { UserServiceClient as _users_v1_UserServiceClient, UserServiceDefinition as _users_v1_UserServiceDefinition } from './users/v1/UserService.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  users: {
    v1: {
      BasicInfo: MessageTypeDefinition<_users_v1_BasicInfo, _users_v1_BasicInfo__Output>
      QueryBasicInfoByIDRequest: MessageTypeDefinition<_users_v1_QueryBasicInfoByIDRequest, _users_v1_QueryBasicInfoByIDRequest__Output>
      UserService: SubtypeConstructor<typeof grpc.Client, _users_v1_UserServiceClient> & { service: _users_v1_UserServiceDefinition }
    }
  }
}

