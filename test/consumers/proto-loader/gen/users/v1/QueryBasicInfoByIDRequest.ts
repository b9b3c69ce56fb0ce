// Original file: protos/user_service.proto

import type { Long } from '@grpc/proto-loader';

export interface QueryBasicInfoByIDRequest {
  'id'?: (number | string | Long);
}

export interface QueryBasicInfoByIDRequest__Output {
  'id': (number);
}
