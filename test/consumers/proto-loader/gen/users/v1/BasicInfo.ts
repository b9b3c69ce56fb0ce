// Original file: protos/user_service.proto

import type { Long } from '@grpc/proto-loader';

export interface BasicInfo {
  'id'?: (number | string | Long);
  'name'?: (string);
  'email'?: (string);
}

export interface BasicInfo__Output {
  'id': (number);
  'name': (string);
  'email': (string);
}
